"""Identity: people, roles and district scope (accounts, sessions, tokens, OpenID Connect)."""
