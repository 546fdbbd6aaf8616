"""What people use around decisions: explanations, tables, static analysis, the scenario kit,
the property-testing kit and the history readers of the command line."""
