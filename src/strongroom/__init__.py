"""Strongroom: the secret pipeline of an AKS cluster with Azure Key Vault, self-hosted."""

__version__ = "0.1.0"
