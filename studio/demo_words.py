"""Hand-written word tables the demo corpus draws from: things, tasks, animals, colours, tips,
small talk, calendar words, names and places. Data only; studio.demo_corpus turns them into
questions, answers and stories. Written by us for the demo; nothing copied.
"""

# name | definition (what follows "A <name> is ...")
THINGS = """cat|a small furry animal that likes to sleep and play
dog|a loyal animal that likes to run and play with people
bicycle|a vehicle with two wheels that you move with your feet
kettle|a pot that is used to boil water
library|a place where you can borrow books for free
umbrella|a cover that keeps you dry when it rains
clock|a tool that shows the time
map|a drawing that shows where places are
garden|a piece of land where people grow flowers and vegetables
bakery|a shop that makes and sells bread and cakes
pillow|a soft bag that you rest your head on in bed
spoon|a small tool for eating soup and cereal
window|an opening in a wall that lets in light and air
bridge|a road that goes over a river or a valley
train|a long vehicle that runs on rails and carries people
farm|a place where people grow food and keep animals
river|a long stream of water that flows to the sea
mountain|a very high hill with steep sides
forest|a large area covered with trees
island|a piece of land with water all around it
lamp|a light that you can put on a table
ladder|a set of steps that you can carry and lean on a wall
backpack|a bag that you carry on your back
calendar|a chart that shows the days, weeks and months of the year
camera|a device that takes pictures
piano|a large musical instrument with black and white keys
blanket|a warm cover for a bed
fridge|a cold box that keeps food fresh
oven|a hot box used to bake and roast food
notebook|a small book with empty pages for writing
pencil|a thin stick used for writing and drawing
tent|a shelter made of cloth that you use when camping
volcano|a mountain that can throw out hot rock and ash
desert|a dry place with very little rain
rainbow|a curve of colors in the sky after the rain
snowman|a figure made of snow that children build in winter
museum|a building where old and interesting things are shown
hospital|a place where doctors and nurses help sick people
market|a place where people buy and sell food and goods
helmet|a hard hat that protects your head
compass|a tool that shows which way is north
battery|a small store of power for phones and toys
recipe|a list of steps that tells you how to cook a dish
sandwich|two slices of bread with food between them
soup|a warm food made by boiling vegetables or meat in water
scarf|a long piece of cloth that keeps your neck warm
kite|a light frame covered with paper that flies in the wind
squirrel|a small animal with a bushy tail that collects nuts
whale|a very large animal that lives in the sea
penguin|a bird that cannot fly but swims very well
turtle|an animal with a hard shell on its back
candle|a stick of wax that gives light when it burns
mirror|a glass that shows your own face
broom|a brush with a long handle for sweeping the floor
wallet|a small case for money and cards
passport|a small book that lets you travel to other countries
telescope|a tool that makes far away things look closer
thermometer|a tool that measures how hot or cold something is"""

# task | three steps
TASKS = """make a cup of tea|boil some water|put a tea bag in a cup and pour the water over it|wait three minutes and take out the bag
plant a tree|dig a hole that is wide and deep|put the young tree in the hole and cover the roots with soil|water it well every week
learn a new word|write the word in a notebook|say it out loud a few times|use it in a sentence on the same day
clean a window|mix warm water with a little soap|wipe the glass with a soft cloth|dry it with a clean towel
make a sandwich|take two slices of bread|put cheese and some vegetables on one slice|cover it with the other slice
fall asleep faster|turn off the screens an hour before bed|keep the room dark and cool|breathe slowly and relax your body
save money|write down what you spend each week|buy only what you need|put a small amount aside every month
bake bread|mix flour, water, yeast and salt|let the dough rise for an hour|bake it in a hot oven until it is golden
start running|buy a pair of good shoes|run slowly for ten minutes|add a few minutes every week
wash a bicycle|rinse it with water|scrub the frame and the wheels with soapy water|dry it and oil the chain
boil an egg|put the egg in a pot of water|bring the water to a boil|cook it for eight minutes and cool it in cold water
write a letter|start with a friendly greeting|say what you want to tell in a few short parts|end with your name
pack for a trip|make a list of what you need|put the heavy things at the bottom of the bag|check the list before you leave
care for a house plant|put it near a bright window|water it when the soil is dry|give it some plant food once a month
make a paper plane|fold a sheet of paper in half|fold the top corners to the middle line|fold the wings down and throw it gently
keep a room tidy|put things back where they belong|clean a little every day|give away things you do not use
cook rice|rinse the rice in cold water|put one cup of rice and two cups of water in a pot|cook it on low heat for fifteen minutes
make friends in a new town|join a club or a class|say hello to your neighbors|invite someone for a coffee
study for a test|read your notes every day|write short questions and answer them|sleep well the night before
tie a shoe|make a loop with one lace|wrap the other lace around the loop|pull it through and make the bow tight
build a snowman|roll a big ball of snow for the body|roll a smaller ball for the head|add stones for the eyes and a carrot for the nose
fix a flat bike tire|take the wheel off and remove the tube|find the hole and put a patch on it|put the tube back and pump it up
make lemonade|squeeze the juice from four lemons|mix it with cold water and a little sugar|add ice and stir well
feed a cat|choose food that is made for cats|give it small meals two times a day|always leave fresh water
draw a simple house|draw a square for the walls|put a triangle on top for the roof|add a door and two windows
remember names|repeat the name when you hear it|link the name to something you can see|use the name when you say goodbye"""

# animal | legs | sound | where it lives | what it eats
ANIMALS = """cat|four|meow|in houses with people|fish and meat
dog|four|woof|in houses and yards|meat and dog food
cow|four|moo|on farms|grass and hay
duck|two|quack|near ponds and lakes|seeds, plants and small bugs
horse|four|neigh|on farms and in fields|grass, hay and oats
sheep|four|baa|on farms and hills|grass
owl|two|hoot|in trees and old barns|mice and small animals
frog|four|croak|near ponds and wet places|flies and other insects
lion|four|roar|in the grasslands of Africa|meat from other animals
pig|four|oink|on farms|grain and vegetables
chicken|two|cluck|on farms in a coop|grain and seeds
bee|six|buzz|in a hive|nectar from flowers
goat|four|bleat|on farms and rocky hills|grass, leaves and bushes
mouse|four|squeak|in fields and sometimes in houses|seeds and grain
wolf|four|howl|in forests and mountains|meat
bear|four|growl|in forests and mountains|berries, fish and honey
crow|two|caw|in trees near fields and towns|seeds, insects and scraps
donkey|four|hee haw|on farms|grass and hay"""

COLORS = """the sky|blue
grass|green
snow|white
a banana|yellow
a ripe tomato|red
coal|black
a carrot|orange
milk|white
a lemon|yellow
chocolate|brown
a strawberry|red
a leaf in summer|green
the sea|blue or green
a fire truck|red
an eggplant|purple
a pumpkin|orange
a rain cloud|grey
a lime|green
a flamingo|pink
salt|white"""

OPPOSITES = ("hot cold|big small|fast slow|happy sad|up down|day night|open closed|light dark|early late|"
             "full empty|loud quiet|wet dry|high low|easy hard|strong weak|long short|clean dirty|push pull|"
             "win lose|inside outside|always never|first last|near far|thick thin|old new|rich poor")

TIPS = """cooking|taste your food as you cook and add salt a little at a time
running|start slowly and drink water before you feel thirsty
reading|read for twenty minutes every evening before bed
swimming|breathe out slowly under water and keep your body flat
gardening|water your plants early in the morning when it is cool
painting|start with light colors and add the dark colors at the end
learning a language|practise a little every day instead of a lot once a week
writing|write the first draft fast and fix it later
camping|test your tent at home before the trip
saving energy|turn off the lights when you leave a room
working from home|keep a fixed place and a fixed time for work
taking photos|keep the sun behind you and hold the camera still
hiking|wear good shoes and carry more water than you think you need
baking|measure the flour with care and do not open the oven too early
playing chess|control the middle of the board early in the game
drawing|look at the object more than at your paper
singing|stand up straight and breathe from your belly
cleaning|work from the top of the room to the bottom
studying|take a short break every half hour
public speaking|practise out loud and speak a little slower than feels natural"""

WHY = """do we sleep|We sleep because the body and the brain need rest to grow and repair.
is the sky blue|The sky looks blue because the air scatters the blue light of the sun more than other colors.
do leaves fall in autumn|Trees drop their leaves in autumn to save water and energy for the cold winter.
do we need water|We need water because every part of the body uses it to work well.
does ice float|Ice floats because it is lighter than the same amount of water.
do birds fly south in winter|Many birds fly south to find warm weather and food.
do we brush our teeth|We brush our teeth to remove bits of food and keep them strong and clean.
does the moon change shape|The moon seems to change shape because we see different parts of it lit by the sun.
do cats purr|Cats often purr when they feel calm and happy.
is exercise good for us|Exercise makes the heart strong and helps you feel more awake.
do we have seasons|We have seasons because the earth is tilted as it goes around the sun.
does bread rise|Bread rises because the yeast makes small bubbles of gas in the dough.
do we wear coats in winter|We wear coats in winter to keep the body warm.
do plants need light|Plants need light to make their own food from air and water.
is the sea salty|The sea is salty because rivers carry small amounts of salt into it over many years.
do we yawn|We often yawn when we are tired or bored.
do onions make us cry|Onions let out a gas when you cut them, and it makes your eyes water.
is it dark at night|It is dark at night because our side of the earth is turned away from the sun.
do bees make honey|Bees make honey to store food for the winter.
do we cook food|We cook food to make it safe, soft and tasty."""

SMALL_TALK = """Hello!|Hello! How can I help you today?
Hi there.|Hi! What would you like to know?
How are you?|I am fine, thank you. How can I help?
Good morning!|Good morning! I hope you have a nice day.
Thank you!|You are welcome. I am glad I could help.
Who are you?|I am a small assistant. I answer simple questions about everyday things.
What can you do?|I can answer simple questions about food, animals, weather and daily life.
Tell me a joke.|Why did the cat sit on the computer? To keep an eye on the mouse.
Goodbye!|Goodbye! Have a good day.
Can you help me?|Yes, of course. What do you need?"""

MEALS = ["breakfast", "lunch", "dinner", "supper"]
FOODS = ["oatmeal with fruit", "eggs with toast", "yogurt with honey", "a bowl of soup", "pasta with tomato sauce",
         "rice with vegetables", "a fresh salad", "a cheese sandwich", "baked potatoes", "fish with green beans",
         "an apple and some nuts", "pancakes with berries", "a vegetable omelette", "bean stew with bread"]
SEASONS = {"spring": "In spring the days get longer, the air is mild and the flowers start to grow.",
           "summer": "In summer it is warm and sunny, and the days are long.",
           "autumn": "In autumn the air gets cool, it rains more and the leaves turn brown and fall.",
           "winter": "In winter it is cold, the nights are long and in some places it snows."}
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
SIZES = ["ant", "mouse", "cat", "dog", "sheep", "horse", "elephant", "whale"]
PETS = ["cat", "dog", "rabbit", "fish", "parrot", "hamster", "turtle", "horse"]
NAMES = ["Anna", "Ben", "Clara", "David", "Emma", "Finn", "Grace", "Hugo", "Iris", "Jack", "Lena", "Max",
         "Nora", "Oscar", "Paula", "Sam", "Tara", "Tom", "Maya", "Leo", "Rosa", "Omar", "Ella", "Karl"]
PLACES = """market|buy fresh fruit|buy bread and cheese|look at the flowers
library|borrow a book|read the news in a quiet corner|return two old books
park|walk the dog|play football with friends|have a picnic on the grass
beach|swim in the sea|look for shells|watch the boats
station|catch the early train|meet a friend from the city|buy a ticket for the weekend
bakery|buy a warm loaf of bread|order a birthday cake|get a coffee and a roll
post office|send a letter to a cousin|pick up a parcel|buy some stamps
garden|pick ripe tomatoes|water the roses|plant new seeds
museum|see old paintings|look at the dinosaur bones|learn about the history of the town
swimming pool|swim ten lengths|take a swimming lesson|relax in the warm water"""
TIMES = ["morning", "afternoon", "evening"]
WEATHER = {"sunny": "wore a hat", "rainy": "took an umbrella", "windy": "wore a thick coat",
           "cold": "put on a warm scarf", "warm": "wore a light shirt", "foggy": "walked slowly"}
SYSTEM_PROMPTS = ["You are a helpful assistant.", "You are a friendly assistant. Keep your answers short.",
                  "Answer the question in one or two sentences.", "You are a helpful assistant for everyday questions."]
PREFIXES = ["", "", "", "Quick question: ", "Hi! ", "Please tell me: ", "I was wondering, ", "Can you help? "]
