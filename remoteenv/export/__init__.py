"""A remoteenv playbook and its hosts, written out in another tool's format.

    >>> from remoteenv import export, playbook, inventory        # doctest: +SKIP
    >>> inv = inventory.load_inventory("hosts.yaml")            # doctest: +SKIP
    >>> hosts = inventory.resolve_many(inv, inv.select(None, "gpu"))   # doctest: +SKIP
    >>> out = export.export_ansible(playbook.load_playbook("workstation"), hosts, "site", inv)  # doctest: +SKIP
    >>> out.command                                              # doctest: +SKIP
    ['ansible-playbook', '-i', 'site/inventory.yml', 'site/playbook.yml']
"""

from __future__ import annotations

from remoteenv.export.ansible import AnsibleExport, export_ansible

__all__ = ["AnsibleExport", "export_ansible"]
