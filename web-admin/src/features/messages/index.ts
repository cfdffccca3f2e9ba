export { MessagesPanel, type MessagesState } from './components/MessagesPanel';
