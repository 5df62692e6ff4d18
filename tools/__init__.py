"""Tools over patient records: ``tools.fhir`` (an async FHIR R4 client over httpx, confined to one base URL,
read-only by default, with bearer and SMART Backend Services auth in ``tools.fhir.auth``), ``tools.records``
(model-free record summaries with provenance), ``tools.fhir_tools`` (LangChain tools over the client for
tool-calling models: compact cited text, fixable errors as text), ``tools.fhirserver`` (a local sekmet-fhir
server for development, tests and ``clinicflow fhir serve``), and ``tools.images`` (the image store: images by URL or
path, fetched once into a content-addressed cache, validated, and handed out as JSON-able ``ImageRef`` records).

Nothing here imports ``agents``: tools are peers of the roles, composed by ``graphs``.
"""

__all__: list[str] = []
