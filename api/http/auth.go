package apihttp

const ctxUserID = "isis.user_id"
