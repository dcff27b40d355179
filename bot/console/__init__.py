"""The admin console `lore serve` serves at /admin: what Lore knows, what people ask, where it
fails, and the review of feedback corrections before they become training data.

Every page is server-rendered HTML (Jinja2 templates and one stylesheet shipped in this
package) and the same figures as JSON under /admin/api/. Admins sign in over OpenID Connect
(`oidc.py`, `sessions.py`) or send a bearer token (`guard.py`)."""
