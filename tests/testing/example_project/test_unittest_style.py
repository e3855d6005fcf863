"""The same helper without pytest fixtures: unittest (and scripts) use `with StrongroomServer() as s:`."""

import os
import socket
import unittest

from azure.keyvault.secrets import SecretClient

from strongroom.testing import StrongroomServer


class SecretsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.resolver_before = socket.getaddrinfo
        cls.env_before = os.environ.get("REQUESTS_CA_BUNDLE")
        cls.server = StrongroomServer().start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        # everything the helper changed in this process is back
        assert socket.getaddrinfo is cls.resolver_before
        assert os.environ.get("REQUESTS_CA_BUNDLE") == cls.env_before
        assert not cls.server.work_dir.exists()

    def test_secret(self):
        client = SecretClient(self.server.vault("kv-unittest"), self.server.credential())
        client.set_secret("s", "v")
        self.assertEqual(client.get_secret("s").value, "v")
