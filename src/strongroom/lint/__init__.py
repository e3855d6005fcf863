"""`strongroom lint`: the five Key Vault + workload identity best practices, checked in Git and live.

General linters see one object at a time; these rules follow the relations (which pod mounts
which SecretProviderClass, which identity it names, what that identity may do). Modules:
`findings` (rule catalogue, Finding), `manifests` (loading YAML, Kustomize, Helm values, with
line numbers), `graph` (relations), `rules/` (one module per practice, offline),
`server_checks` (practice 2 and live values, through an injected client), `suppress`
(inline comments, baseline), `formats` (table, JSON, SARIF), `engine` (runs it all).
"""
