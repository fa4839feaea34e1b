"""HTTP routes: each module only translates HTTP to the services and back."""
