"""ARM's name rules that more than one domain checks (identity's and Key Vault's resource groups).

Each caller raises its own plane's error with the message returned here, so the rule
and its wording live once while `identity/` still need not import `keyvault/`.
"""

from __future__ import annotations

import re

RESOURCE_GROUP_NAME = re.compile(r"^[-\w._()]{1,90}\Z")


def resource_group_problem(name: str) -> str | None:
    """What is wrong with a resource group name (ARM's InvalidResourceGroupName message), or None."""
    if RESOURCE_GROUP_NAME.match(name) and not name.endswith("."):
        return None
    return (
        f"Resource group name '{name}' is invalid. It must be 1-90 characters: letters, digits, underscores, "
        "periods, hyphens and parentheses, and cannot end in a period."
    )
