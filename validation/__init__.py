"""sigprop.validation: theory-versus-simulation experiments, statistics and reports."""
