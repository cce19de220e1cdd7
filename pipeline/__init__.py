"""Everything that executes: expression compiler, SCM sampling, planning, Ray runs, stores, validation, CLI."""
