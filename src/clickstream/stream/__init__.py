"""The stream: lake events onto a broker, and live statistics from it back into the lake."""
