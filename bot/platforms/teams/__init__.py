"""Microsoft Teams adapter: Bot Framework activities in, Adaptive Cards out.

`routes.teams_routes(services)` adds `POST /api/messages` to the web app. The package itself
imports nothing, so that a module using one helper (e.g. `app_package` for `lore manifests`)
does not pay for importing botbuilder.
"""
