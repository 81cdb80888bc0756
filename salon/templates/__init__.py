"""The maison's approved WhatsApp templates: definitions, parameters, selection and sync."""
