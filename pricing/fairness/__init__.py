"""The fairness guard (SPEC §7, rules G1-G6): every price quote leaves through it.

Public API, for the serving layer:

- :class:`pricing.fairness.guard.FairQuoteService`: ``build(...)``, ``quote(item_ids, ctx,
  shopper, request_id=...)``, ``explain(quote_id)``, ``set_guardrails``, ``set_catalog``,
  ``set_policy``, ``flush``, ``close``;
- :class:`pricing.fairness.shopper.Shopper` and :func:`pricing.fairness.shopper.request_scope`;
- :class:`pricing.fairness.programs.DiscountProgram` / ``ProgramBook`` (published programs);
- :func:`pricing.fairness.optout_audit.audit_optout_change` (personalization opt-out audit);
- :func:`pricing.fairness.change_audit.audit_guardrail_change` (guardrail edits in the chain);
- :func:`pricing.fairness.report.report_document` / ``build_report`` /
  ``verify_audit_log`` (``GET /v1/audit/report``, ``fairshelf audit``).

Modules are imported where used, so that importing the shopper type stays cheap.
"""
