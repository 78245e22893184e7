"""The faces people use, each on top of the one ``Bot`` facade: CLI, HTTP API, Slack."""
