"""The API's routes, one module a group; each builds an APIRouter from the app's ApiContext."""
