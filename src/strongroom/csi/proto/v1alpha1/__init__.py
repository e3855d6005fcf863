"""v1alpha1.CSIDriverProvider: service.proto and its generated modules (`make proto`)."""
