// Package models is the model service: chat, generate, embed and list over a
// Backend (Ollama), with model aliases and defaults. Requests and responses
// use Ollama's wire types (github.com/ollama/ollama/api); the HTTP adapters
// translate the OpenAI format to and from them.
package models
