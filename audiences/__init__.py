"""The union's registry of work units and workers, its import, the audience query language, suppression."""
