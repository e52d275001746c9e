"""Rules table: schema, loader, value sets, readings and encounter-level code rules."""
