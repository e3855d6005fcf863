"""The workload identity mutating admission webhook (`strongroom webhook serve`).

It does what Azure/azure-workload-identity's webhook (v1.5) does for a pod labelled
`azure.workload.identity/use: "true"`: inject the service account's client id, the
tenant, the authority host and a projected service-account token, so the Azure SDKs'
`DefaultAzureCredential` / `WorkloadIdentityCredential` find them. Modules:
`mutation` (the pod changes, as JSON Patch), `review` (AdmissionReview v1/v1beta1 in
and out), `kube` (the ServiceAccount read from the Kubernetes API), `tls` (a
certificate reloaded when its files change), `metrics`, `app` (the HTTPS routes).
"""
