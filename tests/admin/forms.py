"""Reading an HTML form back as the browser would submit it unchanged."""

from html.parser import HTMLParser


class _FormFields(HTMLParser):
    def __init__(self, form_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._select_multiple = False
        self._first_option: str | None = None
        self._selected: list[str] = []
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.inside = attributes.get("id") == self.form_id
            return
        if not self.inside:
            return
        name = attributes.get("name")
        if tag == "input" and name and attributes.get("type") not in ("submit", "button", "file"):
            if attributes.get("type") in ("checkbox", "radio") and "checked" not in attributes:
                return
            self.fields.append(
                (name, attributes.get("value") or ("on" if attributes.get("type") == "checkbox" else ""))
            )
        elif tag == "select" and name:
            self._select, self._select_multiple = name, "multiple" in attributes
            self._first_option, self._selected = None, []
        elif tag == "option" and self._select is not None:
            value = attributes.get("value", "")
            if self._first_option is None:
                self._first_option = value
            if "selected" in attributes:
                self._selected.append(value)
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select" and self._select is not None:
            # A browser sends the first option of a single select when none is selected.
            chosen = self._selected or (
                [] if self._select_multiple or self._first_option is None else [self._first_option]
            )
            self.fields.extend((self._select, value) for value in chosen)
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            # The parser keeps the newline browsers drop after <textarea>.
            self.fields.append((self._textarea, "".join(self._text).removeprefix("\n")))
            self._textarea = None


def unchanged_form_data(html: str, form_id: str) -> dict[str, list[str]]:
    """The fields of form `form_id` as submitting it untouched sends them, empty inline templates left out."""
    parser = _FormFields(form_id)
    parser.feed(html)
    data: dict[str, list[str]] = {}
    for name, value in parser.fields:
        if "__prefix__" in name:
            continue
        data.setdefault(name, []).append(value)
    return data
