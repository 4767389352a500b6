"""Small pieces shared by every command: errors, atomic output, progress, device choice."""
