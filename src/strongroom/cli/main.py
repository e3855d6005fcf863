"""Entry point of the `strongroom` command."""

from __future__ import annotations

import sys

if __name__ == "__main__":  # `mount`/`run` start without the other command groups: see cli/agent_main.py
    from strongroom.cli.agent_main import is_agent_command
    from strongroom.cli.agent_main import main as _agent_main

    if is_agent_command(sys.argv[1:]):
        _agent_main()
        sys.exit(0)

import typer

from strongroom.cli import (
    ad,
    admin,
    certificate,
    cloud,
    cluster,
    identity,
    key,
    keyvault,
    keyvault_access,
    role,
    secret,
    timeshift,
)
from strongroom.cli import audit as audit_cli
from strongroom.cli import provider as provider_cli
from strongroom.cli import webhook as webhook_cli
from strongroom.cli.common import complete_three_state_flags
from strongroom.cli.errors import run_cli
from strongroom.cli.hosts import hosts as hosts_cmd
from strongroom.cli.lint import lint as lint_cmd
from strongroom.cli.mount import mount as mount_cmd
from strongroom.cli.run import run as run_cmd
from strongroom.cli.trust import trust as trust_cmd
from strongroom.cli.up import up

app = typer.Typer(
    help="Strongroom: Azure Key Vault, workload identity and the Secrets Store CSI provider, self-hosted.",
    epilog="Add --debug to any command to see the traceback of an unexpected error.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Help text is data (`--id` help shows `[/<version>]`): Rich markup would read it as tags.
    rich_markup_mode=None,
)
app.command("up")(up)
app.command("mount")(mount_cmd)
app.command("run")(run_cmd)
app.command("lint")(lint_cmd)
keyvault.app.add_typer(secret.app, name="secret")
keyvault.app.add_typer(key.app, name="key")
keyvault.app.add_typer(certificate.app, name="certificate")
admin.app.command("time-shift")(timeshift.time_shift)
app.add_typer(keyvault.app, name="keyvault")
app.add_typer(admin.app, name="admin")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(identity.app, name="identity")
app.add_typer(ad.app, name="ad")
app.add_typer(cluster.app, name="cluster")
app.add_typer(provider_cli.app, name="provider")
app.add_typer(role.app, name="role")
app.add_typer(cloud.app, name="cloud")
keyvault.app.command("set-policy")(keyvault_access.set_policy)
keyvault.app.command("delete-policy")(keyvault_access.delete_policy)
keyvault.app.command("update")(keyvault_access.update)
secret.app.command("access-review")(keyvault_access.access_review)
app.add_typer(webhook_cli.app, name="webhook")
app.command("trust")(trust_cmd)
app.command("hosts")(hosts_cmd)

# Flags that take several space-separated values, as az's do (`--tags a=1 b=2`).
MULTI_VALUE_FLAGS = {"--tags"}
MULTI_VALUE_FLAGS |= {"--ops"}  # keyvault key create|import|set-attributes
# identity federated-credential, cluster serviceaccount, ad sp create-for-rbac
MULTI_VALUE_FLAGS |= {"--audiences", "--annotations", "--scopes"}
MULTI_VALUE_FLAGS |= {  # keyvault set-policy, role assignment delete --ids
    "--secret-permissions", "--key-permissions", "--certificate-permissions", "--storage-permissions", "--ids",
}


def expand_multi_value_flags(argv: list[str]) -> list[str]:
    """Rewrite `--tags a b` as `--tags a --tags b` so click can parse it."""
    out: list[str] = []
    flag: str | None = None
    for i, arg in enumerate(argv):
        if arg == "--":
            return out + argv[i:]
        if arg in MULTI_VALUE_FLAGS:
            flag = arg
            out.append(arg)
            continue
        if flag and not arg.startswith("-") and out[-1] != flag:
            out.extend([flag, arg])
            continue
        if arg.startswith("-"):
            flag = None
        out.append(arg)
    return out


def main() -> None:
    argv = expand_multi_value_flags(complete_three_state_flags(sys.argv[1:]))
    run_cli(lambda args: app(args=args, prog_name="strongroom", standalone_mode=True), argv)


if __name__ == "__main__":
    main()
