"""Who is calling: tokens, session cookies and CSRF; password and OIDC sign-in."""
