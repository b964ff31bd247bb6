"""The page scripts, run by st.navigation from app.py; `shared` holds what they have in common."""
