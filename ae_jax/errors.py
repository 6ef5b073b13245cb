"""The one exception type for mistakes a user can fix; launchers print its message as one line."""


class UserError(Exception):
  """A bad config, missing data, unusable workdir...: the message says what to do."""
