"""The image store: images referenced by URL or path, fetched once into a content-addressed local cache, validated
(format, size, dimensions), and handed out as `ImageRef` dictionaries so graph state never holds bytes.

`ImageStore` (in `tools.images.store`) does the caching and fetching; `validate_image` (in `tools.images.validate`)
decides whether bytes are a usable image; the error tree is in `tools.images.errors`. Sources are shown with URL
user info removed and credential-like query values masked (`tools.images.sources`).
"""

from .errors import (
    ImageDigestError,
    ImageError,
    ImageFetchError,
    ImageInvalidError,
    ImageNotFoundError,
    ImageTooLargeError,
)
from .sources import redact as redact_source
from .store import ImageRef, ImageStore
from .validate import ImageInfo, validate_image

__all__ = [
    "ImageDigestError",
    "ImageError",
    "ImageFetchError",
    "ImageInfo",
    "ImageInvalidError",
    "ImageNotFoundError",
    "ImageRef",
    "ImageStore",
    "ImageTooLargeError",
    "redact_source",
    "validate_image",
]
