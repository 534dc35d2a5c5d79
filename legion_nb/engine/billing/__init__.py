"""The billing ledger: what each provider resource costs, from the providers' figures and Legion's
own estimate, reconciled, forecast and shown as frames (see docs/architecture.md, "Billing")."""
