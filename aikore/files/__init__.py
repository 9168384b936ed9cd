"""Files of an instance's folder or the shared models folder, never anything outside them.

Every path from a request goes through ``confine.resolve``; the operations (``ops``) and the
folder archive (``archive``) only ever see paths it returned.
"""
