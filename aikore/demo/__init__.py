"""The demo WebUI: a small offline app that exercises everything the proxy must carry."""
