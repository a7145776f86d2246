"""In-repo fakes of outside services (an SMS gateway)."""
