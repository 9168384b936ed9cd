"""The store: SQLite, the instance model, instance folders and blueprints."""
