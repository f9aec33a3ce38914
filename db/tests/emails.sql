-- Identities that look alike are one identity: emails are stored NFKC, lower case and ASCII; lookalikes of an
-- account cannot be created beside it, and signing in with one behaves like any unknown email.
BEGIN;
SELECT plan(62);

SELECT * FROM tests.fixture(n_images => 0) \gset
SELECT email AS a1_email FROM auth."user" WHERE id = :a1 \gset
SELECT substr(md5(random()::text), 1, 8) AS tag \gset

-- ASCII to its fullwidth twin (U+FF01..U+FF5E): ＡＤＭＩＮ＠…
CREATE FUNCTION pg_temp.fullwidth(t text) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(CASE WHEN ascii(c) BETWEEN 33 AND 126 THEN chr(ascii(c) + 65248) ELSE c END, '' ORDER BY i)
      FROM unnest(string_to_array(t, NULL)) WITH ORDINALITY AS x(c, i)
$$;
GRANT EXECUTE ON FUNCTION pg_temp.fullwidth(text) TO PUBLIC;

SELECT tests.act_as(:admin, 'admin');
SELECT is(api.create_user(' Kate.O''Neil+Derm-' || :'tag' || '@Clinic.Example.ORG ', 'Kate', 'long enough pw') ->> 'email',
          'kate.o''neil+derm-' || :'tag' || '@clinic.example.org', 'create_user answers with the normalised email');
SELECT ok(EXISTS (SELECT 1 FROM auth."user" WHERE email::text = 'kate.o''neil+derm-' || :'tag' || '@clinic.example.org'),
          'the stored email is the normalised form');
SELECT 'kate.o''neil+derm-' || :'tag' || '@clinic.example.org' AS kate \gset

-- lookalikes of an existing account are the same identity: the unique constraint refuses them
SELECT throws_ok(format('SELECT api.create_user(%L, %L, %L)', pg_temp.fullwidth(:'kate'), 'Twin', 'long enough pw'),
                 '23505', NULL, 'the fullwidth form of an existing email is refused as a duplicate');
SELECT throws_ok(format('SELECT api.create_user(%L, %L, %L)', upper(:'kate'), 'Twin', 'long enough pw'),
                 '23505', NULL, 'the upper-case form of an existing email is refused as a duplicate');
SELECT throws_ok(format('SELECT api.create_user(%L, %L, %L)', replace(:'kate', 'k', chr(8490)), 'Twin', 'long enough pw'),
                 '23505', NULL, 'the Kelvin sign (U+212A) for k is refused as a duplicate');
SELECT throws_ok(format('SELECT api.create_user(%L, %L, %L)', replace(:'kate', '@', chr(65312)), 'Twin', 'long enough pw'),
                 '23505', NULL, 'a fullwidth @ is refused as a duplicate');

-- invisible characters, controls and whitespace: refused, naming the field
SELECT throws_ok(format('SELECT api.create_user(%L, %L, %L)', 'ad' || chr(cp) || 'min-' || :'tag' || '@t.org', 'X',
                        'long enough pw'),
                 '22023', 'email: contains an invisible character',
                 format('U+%s in an email is refused', lpad(upper(to_hex(cp)), 4, '0')))
  FROM unnest(ARRAY[x'AD', x'200B', x'200C', x'200D', x'200E', x'200F', x'202A', x'202E', x'2060', x'2062',
                    x'206F', x'FEFF', x'E0001', x'E0041', x'E007F', x'09', x'1F', x'7F', x'85', x'A0', x'2028',
                    x'3000']::int[]) cp;
SELECT throws_ok(format('SELECT api.create_user(%L, %L, %L)', 'ad min-' || :'tag' || '@t.org', 'X', 'long enough pw'),
                 '22023', 'email: contains an invisible character', 'a space inside an email is refused');

-- other scripts: Cyrillic а (U+0430) and Greek Α (U+0391) look like a and A
SELECT throws_ok(format('SELECT api.create_user(%L, %L, %L)', replace(:'kate', 'a', chr(1072)), 'X', 'long enough pw'),
                 '22023', 'email: must be an address in ASCII (international domains in punycode)',
                 'a Cyrillic а is refused');
SELECT throws_ok(format('SELECT api.create_user(%L, %L, %L)', chr(913) || 'dmin-' || :'tag' || '@t.org', 'X',
                        'long enough pw'),
                 '22023', 'email: must be an address in ASCII (international domains in punycode)',
                 'a Greek Α is refused');
SELECT throws_ok(format('SELECT api.create_user(%L, %L, %L)', 'admin-' || :'tag' || '@bücher.example', 'X',
                        'long enough pw'),
                 '22023', 'email: must be an address in ASCII (international domains in punycode)',
                 'an international domain must be given in punycode');
SELECT lives_ok(format('SELECT api.create_user(%L, %L, %L)', 'admin-' || :'tag' || '@xn--bcher-kva.example', 'X',
                       'long enough pw'), 'its punycode form is accepted');

-- sign-in by the one form
SELECT tests.act_as(0, 'anon');
SELECT set_config('request.jwt.claims', '{"request_id": "req-emails"}', true);
SELECT is((api.login(pg_temp.fullwidth(upper(:'a1_email')), 'correct horse battery') -> 'user' ->> 'id')::bigint,
          :a1::bigint, 'the fullwidth upper-case form of an email signs in with the right password');
SELECT set_config('request.jwt.claims', '{"request_id": "req-zwsp"}', true);
SELECT is(api.login(replace(:'a1_email', '@', chr(8203) || '@'), 'correct horse battery'),
          api.login('nobody@t.org', 'correct horse battery'),
          'an invisible character in the email fails with the generic answer, even with the right password');
SELECT tests.as_superuser();
SELECT ok(EXISTS (SELECT 1 FROM audit.event WHERE action = 'login_failed' AND request_id = 'req-zwsp'
                                             AND entity_id IS NULL AND after ->> 'reason' = 'unknown_email'),
          'and is audited as an unknown email');
SELECT is((SELECT failed_logins FROM auth."user" WHERE id = :a1), 0, 'the lookalike counts no failure against the account');
SELECT is(auth.oidc_sign_in(pg_temp.fullwidth(:'a1_email'), 'https://idp.test', 'sub-1') ->> 'ok', 'true',
          'OIDC: the fullwidth form of a verified email maps to the account');
SELECT is(auth.oidc_sign_in(replace(:'a1_email', '@', chr(8203) || '@'), 'https://idp.test', 'sub-1') ->> 'error',
          'no_account', 'OIDC: a lookalike with an invisible character maps to no account');
SELECT ok(EXISTS (SELECT 1 FROM audit.event WHERE action = 'login_failed' AND after ->> 'method' = 'oidc'
                                             AND after ->> 'reason' = 'unknown_email'),
          'and is audited as an unknown email');

-- the functions
SELECT is(auth.email_key(pg_temp.fullwidth('ADMIN@T.ORG')), 'admin@t.org', 'email_key folds fullwidth and case');
SELECT is(auth.email_key(x), NULL, format('email_key of %s is NULL, never an error', coalesce(quote_literal(left(x, 24)), 'NULL')))
  FROM unnest(ARRAY['', '@', 'admin', 'admin@', '@t.org', 'a@b@c', 'a b@t.org', 'admin@t..org', 'admin@t.org.',
                    repeat('a', 65) || '@t.org', 'a@' || repeat('b', 64) || '.org',
                    'a@' || repeat(repeat('b', 60) || '.', 5) || 'org', chr(8203), NULL]) x;
SELECT is(auth.check_email(auth.check_email(x)), auth.check_email(x), 'check_email is idempotent')
  FROM unnest(ARRAY[pg_temp.fullwidth(:'kate'), upper(:'kate'), ' Mixed@Case.Org', 'x@' || chr(8490) || '.org']) x;

-- every writer is covered: an UPDATE is normalised too, and the constraint holds what the trigger would
UPDATE auth."user" SET email = pg_temp.fullwidth(upper(:'a1_email')) WHERE id = :a1;
SELECT is((SELECT email::text FROM auth."user" WHERE id = :a1), :'a1_email', 'an UPDATE stores the normalised form');
SELECT throws_ok(format($$UPDATE auth."user" SET email = %L WHERE id = %s$$, 'a' || chr(8203) || :'a1_email', :a1),
                 '22023', 'email: contains an invisible character', 'an UPDATE to a lookalike is refused');
SET LOCAL session_replication_role = replica;  -- triggers off: the CHECK constraint alone
SELECT throws_ok(format($$UPDATE auth."user" SET email = %L WHERE id = %s$$, upper(:'a1_email'), :a1),
                 '23514', NULL, 'the table refuses an email not in its normal form even without the trigger');
RESET session_replication_role;

SELECT * FROM finish();
ROLLBACK;
