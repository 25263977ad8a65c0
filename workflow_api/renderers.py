"""Response rendering that cannot fail on text the service was sent."""

from rest_framework.renderers import JSONRenderer as DRFJSONRenderer


class JSONRenderer(DRFJSONRenderer):
    """DRF's JSON renderer; text that is not valid Unicode is escaped rather than crashing the reply.

    An error message may quote the caller's input, e.g. a lone surrogate
    ("\\ud800") sent as a choice; UTF-8 cannot encode it, so the reply is
    rendered with ASCII escapes instead: still JSON, still the same data.
    """

    def render(self, data, accepted_media_type=None, renderer_context=None):
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            fallback = DRFJSONRenderer()
            fallback.ensure_ascii = True
            return fallback.render(data, accepted_media_type, renderer_context)
