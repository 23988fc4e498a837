"""Move secrets between stores, e.g. per-user secrets from Secrets Manager into KMS envelopes."""

from __future__ import annotations

from brokerlink.secrets.store import SecretStore

__all__ = ["copy_secrets"]


async def copy_secrets(
    source: SecretStore, target: SecretStore, prefix: str = "", *, delete_source: bool = False
) -> list[str]:
    """Copy every secret under `prefix` from `source` to `target`; the names copied.

    With `delete_source`, each secret is deleted from `source` once `target` holds it, so an
    interrupted run can simply be started again.
    """
    names = await source.list(prefix)
    for name in names:
        await target.put(name, await source.get(name))
        if delete_source:
            await source.delete(name)
    return names
