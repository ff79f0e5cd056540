//! Outputs: JSON lines, annotated frames, preview HTTP server, MQTT (written by the outputs engineer).
