"""The RPC surface: every api function as POST/GET /rpc/<name>, from the catalog SQL keeps; the API description."""
