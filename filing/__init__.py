"""Filing (备案) with the national government-service platform: protocol, outbox, simulator."""
