//! Tests for npm installation.
