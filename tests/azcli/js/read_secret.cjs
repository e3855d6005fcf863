// Reads one secret from Strongroom with the unmodified Azure SDK for JavaScript, configured as
// docs/clients.md says: authorityHost = the instance, disableInstanceDiscovery = true, the
// instance's CA in NODE_EXTRA_CA_CERTS. Prints {"value": ...} or {"error": ...} as one JSON line.
"use strict";
const { ClientSecretCredential, WorkloadIdentityCredential } = require("@azure/identity");
const { SecretClient } = require("@azure/keyvault-secrets");

async function main() {
  const env = process.env;
  const common = {
    authorityHost: env.AZURE_AUTHORITY_HOST,
    disableInstanceDiscovery: env.STRONGROOM_INSTANCE_DISCOVERY !== "on",
  };
  let credential;
  if (process.argv[2] === "client-secret") {
    credential = new ClientSecretCredential(env.AZURE_TENANT_ID, env.AZURE_CLIENT_ID, env.AZURE_CLIENT_SECRET, common);
  } else {
    // tenantId, clientId and the token file come from the webhook's variables, as in a pod.
    credential = new WorkloadIdentityCredential(common);
  }
  const client = new SecretClient(env.VAULT_URL, credential, { retryOptions: { maxRetries: 0 } });
  const secret = await client.getSecret(env.SECRET_NAME);
  return { value: secret.value, id: secret.properties.id };
}

main().then(
  (out) => console.log(JSON.stringify(out)),
  (err) => {
    console.log(JSON.stringify({ error: String((err && err.message) || err).slice(0, 2000) }));
    process.exitCode = 1;
  },
);
