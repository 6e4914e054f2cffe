"""The error every conversion failure raises: its text is what the create stream reports."""


class ConvertError(ValueError):
    pass
