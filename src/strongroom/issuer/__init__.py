"""A Kubernetes-style service-account token issuer: the local "cluster" whose tokens workload identity federates."""
