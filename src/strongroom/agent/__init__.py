"""The agent side without Kubernetes: `strongroom mount` (driver + kubelet) and `strongroom run` (+ Reloader).

assembly.py       the agent put together: options -> token source, provider config, first mount, feed, rotation
local_cluster.py  the local server's TokenRequest API (ClusterTokens) and metadata
atomic_writer.py  Kubernetes' atomic writer with fsync
attributes.py     the Mount attributes exactly as the driver builds them
tokens.py         service-account tokens: the TokenSource interface, a kubelet-style token file
providers.py      the provider in process or over its unix socket
mounter.py        one mount: token -> attributes -> provider -> files -> status
feed_client.py    the vault's change feed (Server-Sent Events), resumed after disconnects
rotation.py       the first mount's retry loop; re-mount on change-feed events, polling as fallback, backoff
supervisor.py     `run`: environment from secretObjects, the child process, restart or signal on rotation
metrics.py        the driver's metrics
"""
