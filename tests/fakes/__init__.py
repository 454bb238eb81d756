"""The fakes themselves (FakeSlack, FakeNotion) against the real clients."""
