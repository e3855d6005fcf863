"""Protocol definitions the provider speaks."""
