"""The front doors: the HTTP app (routing, authentication, refusal order), its listening
sockets and embedded server, and who may read `/readyz` in full (the status key)."""
