"""The `strongroom` command: one module per command group, az's verbs and flags."""
