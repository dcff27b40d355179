"""The Slack adapter: Slack events in, `Question`s to the agent, Block Kit answers out.

`routes.slack_routes(services)` mounts it on `lore serve`'s web app: over HTTP on
`/slack/events`, or over Socket Mode when `SLACK_APP_TOKEN` is set; `app.build_slack_bot`
builds the Bolt app. The package itself imports nothing, so that a module using one helper
(e.g. `mrkdwn`) does not pay for importing slack-bolt.
"""
