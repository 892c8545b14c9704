"""Safe rollouts: staged plans, guardrails, approvals and the controller that runs them."""
