"""What the assistant says without Rasa: greetings, dates and times, bookings, RSVPs, orders, products."""
